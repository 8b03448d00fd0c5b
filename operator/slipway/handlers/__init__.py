"""kopf handlers: thin adapters that read resources, ask the engine and apply its decisions."""
