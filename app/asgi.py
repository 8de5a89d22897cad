"""The ASGI application uvicorn serves: `uvicorn app.asgi:app`."""

from app.main import create_app

# This module is imported only by a serving process (each uvicorn worker), so it alone freezes
# its start-up objects (app/main.py, _freeze_startup_objects).
app = create_app(freeze_after_startup=True)
