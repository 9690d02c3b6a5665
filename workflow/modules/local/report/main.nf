process CFRNA_REPORT {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    // exactly what the report reads, as `cfrna run` gives it: the run's AnnData (the last one written:
    // CFRNA_PATHWAYS', or CFRNA_MATRIX's without contrasts), qc/qc_summary.tsv with the complexity_curves.tsv
    // cfrna qc writes beside it when counting deduplicated, and the provenance files
    tuple val(meta), path(h5ad, stageAs: 'in/cfrna.h5ad'), path(qc, stageAs: 'qc/*'), path(params_json), path(software_versions), path(input_checksums)

    output:
    tuple val(meta), path("report/index.html"), emit: html
    tuple val(meta), path("cfrna.h5ad")       , emit: h5ad   // the input AnnData with uns["provenance"]: the run's complete cfrna.h5ad
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna report \\
        --h5ad in/cfrna.h5ad \\
        --h5ad-out cfrna.h5ad \\
        --qc-summary qc/qc_summary.tsv \\
        --params ${params_json} \\
        --software-versions ${software_versions} \\
        --input-checksums ${input_checksums} \\
        --outdir report \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    """
    mkdir -p report
    touch report/index.html cfrna.h5ad
    """
}
