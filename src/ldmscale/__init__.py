"""ldmscale: latent-diffusion scaling studies, from one CPU to a Kubernetes cluster.

The package is a set of pipeline stages (prepare, train, eval, merge, analyze), each a library
function with a typed config; `ldmscale.cli` wraps them as commands.
"""

__version__ = "0.1.0"
