"""All file I/O: decoding inputs, writing outputs, naming what metadata was found."""
