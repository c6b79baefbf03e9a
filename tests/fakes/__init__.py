"""Local stand-ins for the services the notifiers talk to: Twilio's Messages API and a generic
HTTP SMS gateway. Real HTTP servers on 127.0.0.1 (port 0), started in-process by the tests."""
