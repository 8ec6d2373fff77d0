"""What `ldmscale submit`, `watch` and `cancel` share: the connection options, following a
workflow to its end, and their exit codes.

Exit codes: 0 submitted / cancelled / the workflow Succeeded; 1 the workflow Failed or Errored;
2 bad input, no cluster configuration, cluster unreachable, chart not installed, forbidden, no
such workflow (nothing was created).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ldmscale.errors import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from ldmscale.cluster.client import WorkflowClient

EXIT_INTERRUPTED = 130
"""Ctrl-C while following: the workflow itself goes on."""

CONNECTION_HELP = """\
connection:
  By default the Kubernetes API, with the kubeconfig ($KUBECONFIG, else ~/.kube/config; its
  context gives the namespace) or, inside a pod, the service account. With --argo-server URL,
  Argo Server's REST API instead, with a token from --token or $ARGO_TOKEN.

exit codes:
  0  done (for --wait and watch: the workflow Succeeded)
  1  the workflow Failed or Errored
  2  bad input, no cluster configuration or one that cannot be used (the file named), cluster
     unreachable, chart not installed, forbidden, no such workflow; nothing was created (unless
     submit printed a name)
  130  stopped following with Ctrl-C (the workflow goes on)
"""


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """The options that say which cluster API to talk to."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--namespace",
        "-n",
        help="namespace (default: the kubeconfig context's; with --argo-server $ARGO_NAMESPACE; "
        "else default)",
    )
    group.add_argument("--argo-server", metavar="URL", help="use Argo Server's API at URL")
    group.add_argument("--token", help="Argo Server token (default: $ARGO_TOKEN)")


def connect(args: argparse.Namespace) -> WorkflowClient:
    """The workflow client the options ask for (raises ClusterError)."""
    from ldmscale.cluster.connect import connect as connect_client

    return connect_client(args.namespace, args.argo_server, args.token)


def follow_to_exit(client: WorkflowClient, name: str) -> int:
    """Follow workflow `name` with a progress bar per stage; its exit code by final phase."""
    from ldmscale.cluster.display import StageBars
    from ldmscale.cluster.submit import follow

    bars = StageBars()
    try:
        final = follow(client, name, bars)
    except KeyboardInterrupt:
        bars.close()
        print(f"\nstopped watching; workflow {name} goes on (ldmscale watch {name})")
        return EXIT_INTERRUPTED
    finally:
        bars.close()
    print(f"workflow {name}: {final.phase}{': ' + final.message if final.message else ''}")
    return EXIT_OK if final.phase == "Succeeded" else EXIT_FAILED
