"""The processes, one file each, math first; every one follows the protocol in ``diffnlp.base``."""
