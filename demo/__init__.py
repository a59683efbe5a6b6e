"""The PixelNet Gradio app (``python demo/app.py``) and its helpers."""
