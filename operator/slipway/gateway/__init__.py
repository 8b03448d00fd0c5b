"""The event gateway (aiohttp): trigger runs, receive tool callbacks, read run status."""
