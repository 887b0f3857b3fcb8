# sandbox-agent: a static musl binary with BearSSL. `make help` lists the targets.
VERSION := 0.1.0
BUILD   := build
BEARSSL := $(BUILD)/bearssl
BEARLIB := $(BEARSSL)/src/build/libbearssl.a
BEARINC := $(BEARSSL)/src/inc
BIN     := $(BUILD)/sandbox-agent
GITREV  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

CC      := musl-gcc
WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wshadow -Wvla
HARDEN  := -fstack-protector-strong -D_FORTIFY_SOURCE=2
CFLAGS  := -std=c11 -D_GNU_SOURCE -Os $(WARN) $(HARDEN) -ffunction-sections -fdata-sections \
           -iquote . -I$(BEARINC) -DAGENT_VERSION='"$(VERSION)"' -DAGENT_BUILD='"$(GITREV)"'
LDFLAGS := -static -s -Wl,--gc-sections -Wl,-z,relro,-z,now

SRCS := agent.c loop.c server.c api.c api_proc.c proc.c log.c util.c http.c json.c jwt.c buf.c
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)

# Unit tests: host compiler with sanitizers, each linked against its module only.
UCC     := clang
UFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -iquote . -I$(BEARINC) \
           -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
UNITS   := json http jwt
unit_json_SRCS := json.c buf.c
unit_http_SRCS := http.c
unit_jwt_SRCS  := jwt.c json.c buf.c
unit_jwt_LIBS  := $(BEARLIB)

.PHONY: all deps run test unit bench image clean help
all: $(BIN)

deps:
	@scripts/deps.sh build

$(BEARLIB): | deps
	@scripts/bearssl.sh $(BEARSSL)

$(BUILD)/obj/%.o: %.c $(wildcard *.h) $(BEARLIB) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BIN): $(OBJS) $(BEARLIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $(OBJS) $(BEARLIB) -o $@
	@ls -l $@ | awk '{print "built " $$NF ": " $$5 " bytes"}'

$(BUILD)/unit/test_%: test/unit/test_%.c $(wildcard *.h) $(BEARLIB) FORCE
	@mkdir -p $(@D)
	@$(UCC) $(UFLAGS) $< $(unit_$*_SRCS) $(unit_$*_LIBS) -o $@

FORCE:

run: $(BIN)
	@scripts/run.sh $(BIN)

test: $(BIN) $(UNITS:%=$(BUILD)/unit/test_%)
	@scripts/deps.sh test
	@scripts/test.sh $(BIN) $(UNITS)

bench: $(BIN)
	@scripts/deps.sh bench
	@scripts/bench.sh $(BIN)

clean:
	rm -rf $(BUILD)

help:
	@echo "make        build $(BIN) (static, stripped)"
	@echo "make run    serve on 127.0.0.1:7777 with a dev secret, print a token"
	@echo "make test   unit tests (ASan+UBSan) and integration tests against the binary"
	@echo "make bench  benchmarks against nginx (wrk)"
