# hookcast: webhook multicast daemon.  See README.md.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
SYSCONFDIR ?= /etc
UNITDIR   ?= /lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man

CC        ?= cc
PKGS      := libmicrohttpd libcurl libcjson sqlite3 libcrypto gnutls libsystemd
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wpointer-arith -Wsign-compare -Werror
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -DHOOKCAST_VERSION='"$(VERSION)"' $(WARN) \
             -pthread $(shell pkg-config --cflags $(PKGS))
LDLIBS    += $(shell pkg-config --libs $(PKGS)) -pthread

# SANITIZE=address,undefined or SANITIZE=thread builds into its own directory,
# so sanitized and plain objects never mix.
ifneq ($(SANITIZE),)
CFLAGS    += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
             -fno-omit-frame-pointer -O1
LDFLAGS   += -fsanitize=$(SANITIZE)
BUILD     ?= build-$(subst $(comma),-,$(SANITIZE))
endif
comma     := ,
BUILD     ?= build

# A sanitizer report fails the run instead of scrolling past.
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1

SRCS      := $(wildcard src/*.c)
# The dashboard's page, script and style, which dashboard_files.S embeds.
WEB       := $(wildcard src/dashboard/*)
LIBOBJS   := $(patsubst src/%.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRCS))) \
             $(BUILD)/dashboard_files.o
UNITS     := $(patsubst tests/%.c,%,$(wildcard tests/check_*.c))
UNITBINS  := $(addprefix $(BUILD)/,$(UNITS))
CHECKLIBS := $(shell pkg-config --libs check)

.PHONY: all run check unit integration bench soak install uninstall clean

all: $(BUILD)/hookcast

$(BUILD)/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/dashboard_files.o: src/dashboard_files.S $(WEB) | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/hookcast: $(BUILD)/main.o $(LIBOBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/check_%: tests/check_%.c tests/unit.h $(LIBOBJS)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIBOBJS) $(CHECKLIBS) $(LDLIBS)

$(BUILD):
	mkdir -p $@

run:
	@sh scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	./$(BUILD)/hookcast --config etc/hookcast.conf --data-dir ./data

check:
	@sh scripts/deps.sh check
	@$(MAKE) --no-print-directory unit integration

unit: $(UNITBINS)
	@set -e; for t in $(UNITBINS); do echo "== $$t"; CK_FORK=yes ./$$t; done

integration: $(BUILD)/hookcast tests/node_modules/.package-lock.json
	python3 tests/integration/run.py --binary $(BUILD)/hookcast

# The Node packages the tests use (the Standard Webhooks verifier), exactly
# as tests/package-lock.json pins them.
tests/node_modules/.package-lock.json: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund

bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	bash bench/run.sh $(BUILD)/hookcast

# Not part of check or CI: SOAK_MINUTES (default 20) of churn against the
# -O2 build, judged for growth and loss (bench/soak.py; README, Soak).
soak:
	@sh scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	python3 bench/soak.py --binary $(BUILD)/hookcast --out $(BUILD)/soak

install: $(BUILD)/hookcast
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/hookcast \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/hookcast $(DESTDIR)$(PREFIX)/bin/hookcast
	install -m 0644 etc/hookcast.conf $(DESTDIR)$(SYSCONFDIR)/hookcast/hookcast.conf
	install -m 0644 etc/hookcast.8 $(DESTDIR)$(MANDIR)/man8/hookcast.8
	sed 's|@BINDIR@|$(PREFIX)/bin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/hookcast.service \
	    > $(DESTDIR)$(UNITDIR)/hookcast.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hookcast.service

# The configuration file stays: it may hold an operator's settings and tokens.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hookcast $(DESTDIR)$(UNITDIR)/hookcast.service \
	    $(DESTDIR)$(MANDIR)/man8/hookcast.8

clean:
	rm -rf build build-*
