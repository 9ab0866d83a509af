"""Page routes, one module per part of the console; paths are relative to the console's base."""
