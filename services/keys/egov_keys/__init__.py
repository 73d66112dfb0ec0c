"""keys service: CA hierarchy, credentials under sole control, CRL, OCSP, TSA."""
