"""signing service: PAdES signing with remote keys, and verification."""
