"""Size limits of a triangle."""

MIN_ORIGINS = 3
MIN_DEVELOPMENT_AGES = 2
# Far above any real triangle (annual origins developed monthly over 15 years is 180
# ages), low enough that reading and developing one stays quick.
MAX_PERIODS = 200

# What reading one file may cost, whatever it claims to hold (hardening finding 2: an
# 830 KB workbook of 3,000,000 rows took 110 s and 2.8 GB before it was refused).
# A long-layout triangle of 200 origins by 200 ages is 40,000 rows; a wide one is
# 201 columns. Reading stops at these limits instead of loading the whole file.
MAX_FILE_ROWS = 50_000
# Rows scanned in all, empty ones included (a sheet formatted far below its data).
MAX_SCANNED_ROWS = 200_000
MAX_FILE_COLUMNS = 300
# What a workbook (a ZIP of XML) may unpack to; checked before it is opened.
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
