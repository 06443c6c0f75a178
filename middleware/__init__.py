"""coatcheck middleware: the inbound filter (detect, render), the pipeline and the service."""
