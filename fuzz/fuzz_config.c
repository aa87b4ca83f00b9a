/*
 * Fuzz target: the config loader, or_config_load (include/outrider/config.h).
 *
 * The input is written as config.yaml into the scratch directory of
 * fuzz_files.h (which also holds empty identity files and a policies.yaml,
 * so a config naming them loads whole) and loaded; the config and every
 * diagnostic are freed again.
 *
 * Beyond memory and UB errors, it checks the loader's contract: a load
 * that fails reports at least one error, and one that succeeds reports
 * none; every diagnostic has text; a loaded config names its file, has at
 * least one listener, and every listener has a name.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz_check.h"
#include "fuzz_files.h"
#include "outrider/config.h"
#include "outrider/diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_scratch_dir();
    fuzz_write_input("config.yaml", data, size);
    char path[PATH_MAX + 64];
    fuzz_path(path, sizeof path, "config.yaml");
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = or_config_load(path, &diag);
    for (size_t i = 0; i < diag.count; i++)
        FUZZ_REQUIRE(diag.entries[i].text != NULL && diag.entries[i].text[0] != '\0');
    FUZZ_REQUIRE(diag.errors + diag.warnings == diag.count);
    if (cfg == NULL) {
        FUZZ_REQUIRE(diag.errors > 0);
    } else {
        FUZZ_REQUIRE(diag.errors == 0);
        FUZZ_REQUIRE(cfg->path != NULL && cfg->nfiles >= 1);
        FUZZ_REQUIRE(cfg->nlisteners >= 1);
        for (size_t i = 0; i < cfg->nlisteners; i++)
            FUZZ_REQUIRE(cfg->listeners[i].name != NULL);
        or_config_free(cfg);
    }
    or_diag_free(&diag);
    return 0;
}
