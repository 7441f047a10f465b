"""The `devtui` command line: it parses, calls sshcore (ops for the config, Core for the
network) and prints what they return.

main.py: the parser (every command; handlers load when their command runs) and
add/hosts/tunnels/check; net.py: up, run, ports, demo, hosts test; keys.py: keys ...;
prompts.py: the terminal's answers to the core's questions.
"""

from .main import main

__all__ = ["main"]
