"""Chat platform adapters: pure renderers (`*_render`) beside thin IO senders and apps."""
