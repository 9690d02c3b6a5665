process CFRNA_DE {
    tag "${meta.id}"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(counts), path(samples)   // counts: gene_counts.tsv; samples: samples.tsv (QC exclusions)
    path samplesheet                               // file: samplesheet (relative FASTQ paths resolve against its real folder)
    path contrasts                                 // file: contrasts CSV
    tuple val(meta2), path(gtf)                    // reference annotation (gene names)

    output:
    tuple val(meta), path("de/*.deseq2.tsv"), emit: results
    tuple val(meta), path("de/*")           , emit: files
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna de \\
        --counts ${counts} \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --contrasts ${contrasts} \\
        --samples ${samples} \\
        --gtf ${gtf} \\
        --outdir de \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    """
    mkdir -p de
    touch de/stub.deseq2.tsv de/design.tsv
    """
}
