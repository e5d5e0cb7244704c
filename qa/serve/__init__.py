"""Stage 6, serving: the service layer, the Gradio app and its API, the remote client and the CLI."""
