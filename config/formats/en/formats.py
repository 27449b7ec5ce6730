"""The same formats for plain English (see config/formats/en_GB)."""

from config.formats.en_GB.formats import *  # noqa: F403
