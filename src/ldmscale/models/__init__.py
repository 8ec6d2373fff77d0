"""The model family: U-Net construction from a preset (`ldmscale.config.presets`), cost accounting,
and the frozen text encoder / autoencoder loaders."""
