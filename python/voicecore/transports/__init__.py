"""Caller-side transports (Twilio Media Streams, browser WebSocket) behind one interface."""
