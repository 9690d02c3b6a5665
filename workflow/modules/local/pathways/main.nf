process CFRNA_PATHWAYS {
    tag "${meta.id}"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(de_files, stageAs: 'de_in/*'), path(samples), path(h5ad, stageAs: 'in/cfrna.h5ad')   // de_files: all files of CFRNA_DE; samples: samples.tsv; h5ad: CFRNA_DE's cfrna.h5ad
    path samplesheet                                                     // file: samplesheet (relative FASTQ paths resolve against its real folder)
    tuple val(meta2), path(gtf)                                          // reference annotation (gene symbols)
    path gene_sets, stageAs: 'gene_sets/*'                               // files: GMT, or [] for the bundled sets

    output:
    tuple val(meta), path("pathways/signature_scores.tsv"), emit: scores
    tuple val(meta), path("pathways/*")                   , emit: files
    tuple val(meta), path("cfrna.h5ad")                   , emit: h5ad      // the input AnnData with the GSEA tables and signature scores
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions
    tuple val("${task.process}"), val('gseapy'), eval('python -c "import importlib.metadata as m; print(m.version(\'gseapy\'))"'), emit: versions_gseapy, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def gmt = gene_sets ? "--gene-sets ${gene_sets.join(' ')}" : ''
    """
    cfrna pathways \\
        --de-dir de_in \\
        --gtf ${gtf} \\
        ${gmt} \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        --samples ${samples} \\
        --h5ad in/cfrna.h5ad \\
        --h5ad-out cfrna.h5ad \\
        --outdir pathways \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    """
    mkdir -p pathways
    touch pathways/signature_scores.tsv cfrna.h5ad
    """
}
