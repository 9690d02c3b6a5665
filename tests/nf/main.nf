#!/usr/bin/env nextflow
/*
 * Every module harness of tests/nf/<module>/main.nf in one Nextflow run (one JVM start instead of
 * twelve; tests/test_nf_modules.py runs it once with -stub-run and once for real):
 *   nextflow run tests/nf/main.nf -c tests/nf/nextflow.config --cohort C --results R --index I \
 *       [--modules count,qc] [-stub-run]
 * Each harness also runs alone: nextflow run tests/nf/count/main.nf -c tests/nf/nextflow.config ...
 * The versions topic of every task goes to <outdir>/versions.tsv (process, tool, version).
 */
nextflow.enable.dsl = 2
nextflow.preview.topic = true

include { TEST_CFRNA_SIMULATE   } from './simulate/main'
include { TEST_CFRNA_VALIDATE   } from './validate/main'
include { TEST_CFRNA_PROVENANCE } from './provenance/main'
include { TEST_CFRNA_INDEX      } from './index/main'
include { TEST_CFRNA_TRIM       } from './trim/main'
include { TEST_CFRNA_ALIGN      } from './align/main'
include { TEST_CFRNA_COUNT      } from './count/main'
include { TEST_CFRNA_QC         } from './qc/main'
include { TEST_CFRNA_MATRIX     } from './matrix/main'
include { TEST_CFRNA_DE         } from './de/main'
include { TEST_CFRNA_PATHWAYS   } from './pathways/main'
include { TEST_CFRNA_REPORT     } from './report/main'

workflow {
    def known = ['simulate', 'validate', 'provenance', 'index', 'trim', 'align', 'count', 'qc', 'matrix', 'de', 'pathways', 'report']
    def wanted = params.modules.toString().tokenize(',')*.trim()
    def unknown = wanted - known
    if (unknown) error("harness: unknown module(s) ${unknown.join(', ')} (known: ${known.join(', ')})")

    if ('simulate' in wanted)   TEST_CFRNA_SIMULATE()
    if ('validate' in wanted)   TEST_CFRNA_VALIDATE()
    if ('provenance' in wanted) TEST_CFRNA_PROVENANCE()
    if ('index' in wanted)      TEST_CFRNA_INDEX()
    if ('trim' in wanted)       TEST_CFRNA_TRIM()
    if ('align' in wanted)      TEST_CFRNA_ALIGN()
    if ('count' in wanted)      TEST_CFRNA_COUNT()
    if ('qc' in wanted)         TEST_CFRNA_QC()
    if ('matrix' in wanted)     TEST_CFRNA_MATRIX()
    if ('de' in wanted)         TEST_CFRNA_DE()
    if ('pathways' in wanted)   TEST_CFRNA_PATHWAYS()
    if ('report' in wanted)     TEST_CFRNA_REPORT()

    Channel.topic('versions')
        .map { process, tool, version -> "${process}\t${tool}\t${version.toString().trim()}".toString() }
        .collectFile(name: 'versions.tsv', storeDir: params.outdir, sort: true, newLine: true)
}
