"""Protocol-faithful fake provider servers on 127.0.0.1, for the adapters' tests."""
