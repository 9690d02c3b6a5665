process CFRNA_MATRIX {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(counts, stageAs: 'counts/*'), path(qc_summary)   // counts: *.counts.tsv; qc_summary: qc_summary.tsv
    path samplesheet                                                         // file: samplesheet (relative FASTQ paths resolve against its real folder)
    tuple val(meta2), path(gtf)                                              // reference annotation

    output:
    tuple val(meta), path("matrix/gene_counts.tsv")    , emit: counts
    tuple val(meta), path("matrix/gene_counts_dedup.tsv"), emit: counts_dedup, optional: true   // counted with --dedup
    tuple val(meta), path("matrix/samples.tsv")        , emit: samples
    tuple val(meta), path("matrix/gene_annotation.tsv"), emit: annotation
    tuple val(meta), path("matrix/cfrna.h5ad")         , emit: h5ad         // the carrier: counts, samples, genes, QC
    tuple val(meta), path("matrix/*")                  , emit: files
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna matrix \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --gtf ${gtf} \\
        --counts-dir counts \\
        --qc-summary ${qc_summary} \\
        --outdir matrix \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    """
    mkdir -p matrix
    touch matrix/gene_counts.tsv matrix/samples.tsv matrix/gene_annotation.tsv matrix/cfrna.h5ad
    """
}
