"""flux-hello: an example Flux plugin (an operator, a CLI command and a macro namespace).

Nothing is imported here: Flux imports ``flux_hello.plugin`` on every ``flux`` command, and that
module only names where each part lives.
"""

__version__ = "0.1.0"
