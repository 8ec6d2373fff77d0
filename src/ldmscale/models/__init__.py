"""The model family: presets (the base width is the dial), U-Net construction, cost accounting,
and the frozen text encoder / autoencoder loaders."""
