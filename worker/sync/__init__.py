"""Platform-independent sync machinery: connectors supply batches, the engine stores them."""
