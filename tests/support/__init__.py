"""Helpers the tests share: small data and models, servers, hostile requests."""
