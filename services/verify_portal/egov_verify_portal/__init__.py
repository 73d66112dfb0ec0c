"""verify portal: a web page where relying parties check signed documents."""
