process CFRNA_DE {
    tag "${meta.id}"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(counts), path(samples), path(h5ad, stageAs: 'in/cfrna.h5ad')   // counts: gene_counts.tsv; samples: samples.tsv (QC exclusions); h5ad: CFRNA_MATRIX's cfrna.h5ad
    path samplesheet                               // file: samplesheet (relative FASTQ paths resolve against its real folder)
    path contrasts                                 // file: contrasts CSV
    tuple val(meta2), path(gtf)                    // reference annotation (gene names)

    output:
    tuple val(meta), path("de/*.deseq2.tsv"), emit: results
    tuple val(meta), path("de/*")           , emit: files
    tuple val(meta), path("cfrna.h5ad")     , emit: h5ad      // the input AnnData with the DE results (written anew: a staged input cannot be an output)
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
        --h5ad in/cfrna.h5ad \\
        --h5ad-out cfrna.h5ad \\
        --outdir de \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    """
    mkdir -p de
    touch de/stub.deseq2.tsv de/design.tsv cfrna.h5ad
    """
}
