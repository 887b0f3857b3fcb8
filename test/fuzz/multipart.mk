FUZZ += multipart
fuzz_multipart_SRCS := multipart.c
