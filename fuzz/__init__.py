"""`make fuzz`: the OpenAPI description fuzzed with schemathesis against a running Crier."""
