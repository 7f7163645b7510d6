#!/bin/sh
# One sharded audit on Kubernetes, as a nightly CronJob or a CI step would run it: the shards, then the merge.
set -eu
here=$(dirname "$0")
kubectl delete job auditor-shards auditor-merge --ignore-not-found
kubectl apply -f "$here/audit-shards.yaml"
kubectl wait --for=condition=complete --timeout=8h job/auditor-shards
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete --timeout=1h job/auditor-merge
