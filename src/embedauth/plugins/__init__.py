"""Built-in plugins: behaviour that ships with embedauth, on the same hooks a third party uses.

:mod:`.log` writes every refusal, with its internal reason, to the ``embedauth`` logger. It is
registered on every plugin manager (``make_plugin_manager``); unregister it by name
(``auth.plugins.unregister(name="embedauth.plugins.log")``) to silence it.
"""
