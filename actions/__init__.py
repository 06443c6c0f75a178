"""coatcheck for rasa-sdk custom actions: opt-in reveals, checks and confirmation prompts."""
