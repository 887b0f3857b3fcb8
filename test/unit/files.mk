UNITS += files
unit_files_SRCS := files.c util.c
