"""Size limits of a triangle."""

MIN_ORIGINS = 3
MIN_DEVELOPMENT_AGES = 2
# Far above any real triangle (annual origins developed monthly over 15 years is 180
# ages), low enough that reading and developing one stays quick.
MAX_PERIODS = 200
