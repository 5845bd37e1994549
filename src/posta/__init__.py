"""Posta: the mail module of the CRM."""
