process CFRNA_MATRIX {
    tag "${meta.id}"
    label 'process_single'
    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(counts, stageAs: 'counts/*'), path(qc_summary)   // counts: *.counts.tsv; qc_summary: qc_summary.tsv
    path samplesheet                                                         // file: samplesheet (relative FASTQ paths resolve against its real folder)
    path gtf                                                                 // file: GTF

    output:
    tuple val(meta), path("matrix/gene_counts.tsv")    , emit: counts
    tuple val(meta), path("matrix/samples.tsv")        , emit: samples
    tuple val(meta), path("matrix/gene_annotation.tsv"), emit: annotation
    tuple val(meta), path("matrix/*")                  , emit: files
    path "versions.yml"                                , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna-matrix \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --gtf ${gtf} \\
        --counts-dir counts \\
        --qc-summary ${qc_summary} \\
        --outdir matrix \\
        --threads ${task.cpus} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-matrix --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p matrix
    touch matrix/gene_counts.tsv matrix/samples.tsv matrix/gene_annotation.tsv
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
