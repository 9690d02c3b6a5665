process CFRNA_DE {
    tag "${meta.id}"
    label 'process_medium'
    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(counts), path(samples)   // counts: gene_counts.tsv; samples: samples.tsv (QC exclusions)
    path samplesheet                               // file: samplesheet (relative FASTQ paths resolve against its real folder)
    path contrasts                                 // file: contrasts CSV
    path gtf                                       // file: GTF (gene names)

    output:
    tuple val(meta), path("de/*.deseq2.tsv"), emit: results
    tuple val(meta), path("de/*")           , emit: files
    path "versions.yml"                     , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna-de \\
        --counts ${counts} \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --contrasts ${contrasts} \\
        --samples ${samples} \\
        --gtf ${gtf} \\
        --outdir de \\
        --threads ${task.cpus} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-de --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p de
    touch de/stub.deseq2.tsv de/design.tsv
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
