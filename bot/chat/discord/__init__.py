"""Discord: the gateway client and app commands, the REST sender (IO), and the embed renderer
(pure)."""
