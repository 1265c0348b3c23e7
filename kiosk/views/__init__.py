"""HTTP views, one blueprint per audience; each calls the domain and picks a template."""
