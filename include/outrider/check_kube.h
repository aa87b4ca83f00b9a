/*
 * check_kube: `outrider check -c FILE` on a Kubernetes manifest.
 *
 * Contract: a file is a manifest when one of its YAML documents is a
 * mapping with top-level `apiVersion` and `kind` (or_kube_detect); any other
 * file is an Outrider config and is checked as one. or_kube_check walks
 * every document (and the items of a `kind: List`), checks the pod spec of
 * each workload (Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet,
 * ReplicationController, Job, CronJob) against the rules in
 * docs/cli-and-logs.md, and for the Outrider sidecar checks the config it
 * reads out of a ConfigMap in the same file. Every finding goes to `diag`
 * as "file:line:column: error|warning: Kind/name: ..."; errors break the
 * Kubernetes "restricted" Pod Security Standard (or stop the sidecar from
 * starting), warnings are guidance beyond it. Nothing is read but the
 * manifest itself: no identity file, no cluster.
 */
#ifndef OUTRIDER_CHECK_KUBE_H
#define OUTRIDER_CHECK_KUBE_H

#include <stdbool.h>
#include <stddef.h>

#include "outrider/diag.h"

typedef struct {
    size_t objects;    /* Kubernetes objects seen (List items included) */
    size_t workloads;  /* of them, objects with a pod spec */
    size_t containers; /* containers, init and ephemeral containers checked */
    size_t configs;    /* sidecar configs read from a ConfigMap and checked */
} or_kube_summary;

/* Whether text holds a manifest. Stops at the first document that is one,
 * or at the first syntax error (the file is then left to the config loader,
 * which reports it). */
bool or_kube_detect(const char *text, size_t len);

/* Checks a manifest held in memory; `file` names it in every message. */
void or_kube_check(const char *file, const char *text, size_t len, or_diag *diag,
                   or_kube_summary *summary);

/* `outrider check` on FILE when it is a manifest: prints the findings and a
 * summary line to stderr and stores the exit status (0: no error, 1: an
 * error) in *status. Returns false, printing nothing, when FILE is not a
 * manifest or cannot be read: the config check then takes over. */
bool or_kube_check_command(const char *file, int *status);

#endif
