# caplat — one Makefile for the whole suite.
#   make            build everything under build/
#   make run        install what is missing, start the suite on loopback
#   make stop       stop what `make run` started (the supervisor first)
#   make status     each process of `make run`: pid, up/down, restarts
#   make check      the tree's rules: clang-format clean, SQL only in store files,
#                   no import circles, no duplicate symbols (tests/tools/check.py)
#   make test       unit tests, then integration/e2e against real servers
#   make DEBUG=1 …  AddressSanitizer + UBSan build
#   make fuzz       libFuzzer harnesses (tests/fuzz) built with clang under
#                   build/fuzz, each run FUZZ_SECONDS (60); make fuzz-ci: 10 s

CC ?= cc
PYTHON ?= /usr/bin/python3
OPTIMIZATION ?= -O2
PKGS := libevent libevent_pthreads libevent_openssl hiredis libpq openssl jansson libnats
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-qual -Wno-unused-parameter
CFLAGS ?= $(OPTIMIZATION) -g
ifeq ($(DEBUG),1)
CFLAGS := -O0 -g -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
BUILD ?= build/debug
else
BUILD ?= build
endif
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Icommon $(PKG_CFLAGS) -MMD -MP
LIBS := $(PKG_LIBS) -lpthread -lm
# Libraries one service links beyond LIBS: enterprise reads business licences
# with Tesseract and Leptonica (issue 20).
enterprise_LIBS := $(shell pkg-config --libs tesseract lept 2>/dev/null)
# payments sends invoice e-mails with libcurl's SMTP client (issue 18).
payments_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null)

COMMON_SRC := $(filter-out common/test_%.c,$(wildcard common/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIBCAPLAT := $(BUILD)/libcaplat.a

SERVICES := $(notdir $(wildcard services/*))
SERVICE_BINS := $(SERVICES:%=$(BUILD)/bin/caplat-%)

UNIT_SRC := $(wildcard common/test_*.c services/*/test_*.c)
UNIT_BINS := $(patsubst %.c,$(BUILD)/tests/%,$(subst /,_,$(UNIT_SRC)))

TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/bin/%)

.PHONY: all run stop status test unit check clean format
# Keep intermediate objects (tools' .o files) so nothing rebuilds needlessly.
.SECONDARY:
all: $(SERVICE_BINS) $(UNIT_BINS) $(TOOL_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBCAPLAT): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

# A service is every .c in its folder but its unit tests.
define service_rule
$(1)_OBJ := $$(patsubst %.c,$(BUILD)/%.o,$$(filter-out services/$(1)/test_%.c,$$(wildcard services/$(1)/*.c)))
$(BUILD)/bin/caplat-$(1): $$($(1)_OBJ) $(LIBCAPLAT)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS) -o $$@ $$($(1)_OBJ) $(LIBCAPLAT) $(LIBS) $$($(1)_LIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

# A unit test links its own object, the service's objects but main.o, libcaplat, cmocka.
# A test that #includes a .c file (to reach its static functions) does not also
# link that file's object: every symbol is defined once (no
# --allow-multiple-definition). libcaplat is an archive, so the linker takes
# none of its members that the test object already defines.
included_obj = $(patsubst %,$(BUILD)/$(dir $(1))%,$(patsubst %.c,%.o,$(shell sed -n 's/^\#include "\([^"/]*\.c\)".*/\1/p' $(1))))
define unit_rule
$(BUILD)/tests/$(subst /,_,$(1:%.c=%)): $(BUILD)/$(1:%.c=%.o) $$(filter-out %/main.o $(call included_obj,$(1)),$$(if $$(filter services/%,$(1)),$$($(word 2,$(subst /, ,$(1)))_OBJ))) $(LIBCAPLAT)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LIBS) $$(if $$(filter services/%,$(1)),$$($(word 2,$(subst /, ,$(1)))_LIBS)) -lcmocka
endef
$(foreach t,$(UNIT_SRC),$(eval $(call unit_rule,$(t))))

$(BUILD)/bin/%: $(BUILD)/tests/tools/%.o $(LIBCAPLAT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do echo "== $$t"; $$t || exit 1; done

# The checks read the objects (nm), so they build them first; the self-test
# proves each check still fails on a bad input.
check: $(COMMON_OBJ) $(foreach s,$(SERVICES),$($(s)_OBJ))
	$(PYTHON) tests/tools/check.py --self-test
	$(PYTHON) tests/tools/check.py --build $(BUILD)
	bash tests/contract/lint-spec.sh

test: all
	$(PYTHON) tests/run.py --build $(BUILD)

# make run starts a supervisor that outlives it and restarts what dies.
run:
	bash deploy/scripts/install-deps.sh
	$(MAKE) all
	$(PYTHON) deploy/scripts/suite.py run

stop:
	$(PYTHON) deploy/scripts/suite.py stop

status:
	@$(PYTHON) deploy/scripts/suite.py status

format:
	clang-format -i common/*.[ch] services/*/*.[ch] tests/tools/*.c

# proto/openapi.yaml lints clean with the Redocly CLI (tests/contract/).
.PHONY: lint-spec
lint-spec:
	bash tests/contract/lint-spec.sh

# ---- fuzzing (tests/fuzz) ---------------------------------------------------
# Each tests/fuzz/fuzz_<target>.c is a libFuzzer harness, built by clang with
# ASan and UBSan into build/fuzz (its own objects and libcaplat, apart from
# the gcc build) and linked with the objects of the service whose header it
# includes (but main.o). `make fuzz` runs each for FUZZ_SECONDS on a copy of
# its seed corpus tests/fuzz/corpus/<target>; FUZZ_TARGETS picks some.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_BUILD := build/fuzz
# clang warns of `{"a", "b"}` leaving later fields to zero; gcc does not.
FUZZ_WARN := -Wno-missing-field-initializers
.PHONY: fuzz fuzz-ci fuzz-build fuzz-bins
fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang \
	    CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) $(FUZZ_WARN)" fuzz-bins
fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=10

fuzz-bins: $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

# Every route pattern of the services, for fuzz_http.
$(BUILD)/tests/fuzz/fuzz_routes.inc: $(filter-out services/%/test_%.c,$(wildcard services/*/*.c))
	@mkdir -p $(dir $@)
	grep -ohE '"/api/v1/[^" ]*"' $^ | sort -u | sed 's/$$/,/' > $@

$(BUILD)/tests/fuzz/%.o: tests/fuzz/%.c $(BUILD)/tests/fuzz/fuzz_routes.inc
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I$(BUILD)/tests/fuzz -c $< -o $@

fuzz_service = $(shell sed -n 's|^\#include "\.\./\.\./services/\([a-z]*\)/.*|\1|p' $(1) | head -1)
define fuzz_rule
$(BUILD)/fuzz/$(notdir $(1:%.c=%)): $(BUILD)/$(1:%.c=%.o) $$(filter-out %/main.o,$$($(call fuzz_service,$(1))_OBJ)) $(LIBCAPLAT)
	@mkdir -p $$(dir $$@)
	$(CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $$@ $$^ $(LIBS) $($(call fuzz_service,$(1))_LIBS)
endef
$(foreach t,$(FUZZ_SRC),$(eval $(call fuzz_rule,$(t))))

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
