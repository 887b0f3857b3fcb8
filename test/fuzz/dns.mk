FUZZ += dns
fuzz_dns_SRCS := dns.c
