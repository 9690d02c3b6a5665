//
// cfrna: plasma cfRNA-seq reads -> QC-gated gene counts, DE and pathway signatures.
// Orchestration only: every step is a `cfrna <stage>` command (bin/cfrna-<stage>).
//
import groovy.json.JsonOutput

include { CFRNA_SIMULATE   } from '../modules/local/simulate/main'
include { CFRNA_VALIDATE   } from '../modules/local/validate/main'
include { CFRNA_PROVENANCE } from '../modules/local/provenance/main'
include { CFRNA_INDEX      } from '../modules/local/index/main'
include { SAMPLE_COUNTS    } from '../subworkflows/local/sample_counts/main'
include { CFRNA_QC         } from '../modules/local/qc/main'
include { CFRNA_MATRIX     } from '../modules/local/matrix/main'
include { CFRNA_DE         } from '../modules/local/de/main'
include { CFRNA_PATHWAYS   } from '../modules/local/pathways/main'
include { CFRNA_REPORT     } from '../modules/local/report/main'

// [process, tool, version] tuples of the versions topic -> one YAML block per process (its last
// name: CFRNA_COUNT, not CFRNA:SAMPLE_COUNTS:CFRNA_COUNT) and a Workflow block
def softwareVersionsYaml(ch_topic) {
    return ch_topic
        .map { process, tool, version -> [process.toString().tokenize(':')[-1], "    ${tool}: ${version.toString().trim()}".toString()] }
        .unique()
        .groupTuple()
        .map { process, lines -> "${process}:\n".toString() + lines*.toString().unique().sort().join('\n') }
        .mix(Channel.of("Workflow:\n    ${workflow.manifest.name}: ${workflow.manifest.version}\n    Nextflow: ${workflow.nextflow.version}".toString()))
}

// files of a channel of [meta, files...] tuples, flattened and sorted by name, as one list
// (sorted so that the task hash, hence -resume, does not depend on completion order)
def collectFiles(ch) {
    return ch.map { it.drop(1) }.flatten().collect(sort: { a, b -> a.name <=> b.name }).ifEmpty([])
}

workflow CFRNA {
    main:
    def cohort = [id: 'cohort']

    //
    // Inputs: a simulated cohort (--simulate, the test profile) or the user's files
    //
    if (params.simulate) {
        CFRNA_SIMULATE(params.sim_samples, params.sim_reads, params.sim_seed)
        // value channels (a process whose inputs are all values emits values): read by every task
        ch_sheet     = CFRNA_SIMULATE.out.samplesheet
        ch_contrasts = CFRNA_SIMULATE.out.contrasts
        ch_fasta     = CFRNA_SIMULATE.out.fasta.map { [[id: it.baseName], it] }
        ch_gtf       = CFRNA_SIMULATE.out.gtf.map { [[id: it.baseName], it] }
    } else {
        def fasta = file(params.fasta, checkIfExists: true)
        def gtf = file(params.gtf, checkIfExists: true)
        ch_sheet     = Channel.value(file(params.input, checkIfExists: true))
        ch_contrasts = Channel.value(params.contrasts ? file(params.contrasts, checkIfExists: true) : [])
        ch_fasta     = Channel.value([[id: fasta.baseName], fasta])
        ch_gtf       = Channel.value([[id: gtf.baseName], gtf])
    }
    def has_contrasts = params.simulate || params.contrasts
    ch_gene_sets = Channel.value(
        params.gene_sets ? params.gene_sets.toString().tokenize(',').collect { file(it.trim(), checkIfExists: true) } : []
    )

    //
    // Validate samplesheet, contrasts and reference with the project's Python (no plugin). The
    // per-sample channel comes from the validated sheet (absolute FASTQ paths); the cohort stages
    // read the user's sheet itself, as `cfrna run` does, and start only after the samples are done.
    //
    CFRNA_VALIDATE(ch_sheet, ch_contrasts, ch_gtf, ch_fasta)

    ch_reads = CFRNA_VALIDATE.out.samplesheet
        .splitCsv(header: true, strip: true)
        .map { row ->
            // a sample's UMI columns over the run-wide --umi_* (as cfrna.trim.umi.sample_umi for `cfrna run`)
            def sheet_pattern = (row.umi_pattern ?: '').trim()
            def sheet_in_name = (row.umi_in_name ?: '').trim().toLowerCase()
            def umi_pattern = params.umi_pattern ?: ''
            def umi_in_name = params.umi_in_name as boolean
            if (sheet_pattern.toLowerCase() == 'none') { umi_pattern = ''; umi_in_name = false }
            else if (sheet_pattern) { umi_pattern = sheet_pattern; umi_in_name = false }
            else if (sheet_in_name) {
                umi_in_name = sheet_in_name in ['true', 'yes', '1']
                umi_pattern = umi_in_name ? '' : umi_pattern
            }
            def meta = [id: row.sample, single_end: !row.fastq_2, strandedness: row.strandedness,
                        umi_pattern: umi_pattern, umi_read: (row.umi_read ?: params.umi_read ?: '').toString(),
                        umi_in_name: umi_in_name, umi_separator: params.umi_separator,
                        has_umis: (umi_pattern || umi_in_name) as boolean]
            def reads = [file(row.fastq_1, checkIfExists: true)]
            if (row.fastq_2) { reads << file(row.fastq_2, checkIfExists: true) }
            [meta, reads]
        }

    //
    // pipeline_info: params, software versions, input checksums (same writers as `cfrna run`);
    // params.layout (conf/layout.config) is the output tree, not a parameter
    //
    CFRNA_PROVENANCE(
        JsonOutput.toJson(params.findAll { k, v -> !k.contains('-') && k != 'layout' }),
        ch_sheet, ch_contrasts, ch_fasta, ch_gtf, ch_gene_sets, params.aligner
    )

    //
    // Index once, then trim -> align -> count per sample
    //
    CFRNA_INDEX(ch_fasta, ch_gtf, params.aligner, params.index_dir ? file(params.index_dir).toString() : '')

    SAMPLE_COUNTS(ch_reads, ch_fasta, ch_gtf, CFRNA_INDEX.out.index, params.aligner, params.skip_trim)

    //
    // Cohort: QC gates -> matrix -> DE -> pathways -> report
    //
    ch_count_files = collectFiles(SAMPLE_COUNTS.out.counts.join(SAMPLE_COUNTS.out.summary).join(SAMPLE_COUNTS.out.stats))
    ch_align_files = collectFiles(SAMPLE_COUNTS.out.align_json.join(SAMPLE_COUNTS.out.bam))   // QC reads BAM headers
    ch_trim_json   = collectFiles(SAMPLE_COUNTS.out.trim_json)

    CFRNA_QC(
        ch_count_files.map { [cohort, it] }.combine(ch_align_files.map { [it] }).combine(ch_trim_json.map { [it] }),
        ch_sheet, ch_gtf
    )

    CFRNA_MATRIX(
        collectFiles(SAMPLE_COUNTS.out.counts.mix(SAMPLE_COUNTS.out.dedup)).map { [cohort, it] }.combine(CFRNA_QC.out.summary.map { it[1] }),
        ch_sheet, ch_gtf
    )

    // the run's AnnData: CFRNA_MATRIX creates it, CFRNA_DE and CFRNA_PATHWAYS each write a new one with
    // their results added (a task cannot rewrite a staged input), CFRNA_REPORT adds the provenance
    ch_h5ad = CFRNA_MATRIX.out.h5ad
    if (has_contrasts) {
        // --de_counts: raw, dedup, or auto = dedup when every sample declares UMIs (as cfrna run)
        ch_all_umis = ch_reads.map { it[0].has_umis }.collect().map { it.every() }
        ch_de_counts = CFRNA_MATRIX.out.counts.join(CFRNA_MATRIX.out.counts_dedup, remainder: true)
            .combine(ch_all_umis)
            .map { meta, raw, dedup, all_umis ->
                def want = params.de_counts == 'dedup' || (params.de_counts == 'auto' && params.dedup in ['auto', 'directional', 'unique'] && all_umis)
                if (want && !dedup) { error "--de_counts ${params.de_counts}: the matrix stage wrote no gene_counts_dedup.tsv (count with --dedup)" }
                [meta, want ? dedup : raw]
            }
        CFRNA_DE(ch_de_counts.join(CFRNA_MATRIX.out.samples).join(CFRNA_MATRIX.out.h5ad), ch_sheet, ch_contrasts, ch_gtf)
        CFRNA_PATHWAYS(
            CFRNA_DE.out.files.join(CFRNA_MATRIX.out.samples).join(CFRNA_DE.out.h5ad),
            ch_sheet, ch_gtf, ch_gene_sets
        )
        ch_h5ad = CFRNA_PATHWAYS.out.h5ad
    }

    // the report reads the AnnData, the QC summary (with the complexity curves beside it) and
    // pipeline_info's provenance files (as `cfrna run`)
    ch_report_qc = CFRNA_QC.out.files
        .map { meta, files -> [meta, (files instanceof List ? files : [files]).findAll { f -> f.name in ['qc_summary.tsv', 'complexity_curves.tsv'] }.sort { f -> f.name }] }
    CFRNA_REPORT(
        ch_h5ad
            .join(ch_report_qc)
            .combine(CFRNA_PROVENANCE.out.params)
            .combine(CFRNA_PROVENANCE.out.versions_yml)
            .combine(CFRNA_PROVENANCE.out.checksums)
    )

    //
    // Per-process versions: every module puts [process, tool, version] on the `versions` topic
    // (the cohort-wide software_versions.yml comes from CFRNA_PROVENANCE)
    //
    softwareVersionsYaml(Channel.topic('versions'))
        .collectFile(name: 'nf_process_versions.yml', storeDir: "${params.outdir}/${params.layout.pipeline_info}",
                     sort: true, newLine: true)

    emit:
    report = CFRNA_REPORT.out.html     // channel: [ val(meta), path(index.html) ]
    h5ad   = CFRNA_REPORT.out.h5ad     // channel: [ val(meta), path(cfrna.h5ad) ]
}
