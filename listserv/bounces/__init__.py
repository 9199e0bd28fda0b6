"""Bounces: parse DSNs and NDRs (parse), score members and probe them (score)."""
