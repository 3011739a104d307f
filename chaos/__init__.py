"""`make chaos`: writers, flapping links and a killed region server, then proof that nothing was lost."""
