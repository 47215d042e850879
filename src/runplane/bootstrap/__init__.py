"""The one composition root, split by feature: the only code that names
concrete adapters. `assembly.assemble` builds everything one `runplane serve`
runs; the other modules each wire one feature."""
