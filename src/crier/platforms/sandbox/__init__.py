"""The sandbox platform: a social network Crier can run itself, to be driven into every
failure mode over real HTTP (`crier sandbox`; docs/sandbox.md)."""
