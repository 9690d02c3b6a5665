process CFRNA_REPORT {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    // exactly the tables of this run that the report reads (QC summary, matrix tables without an
    // h5ad, DE, pathways, pipeline_info), staged as links into the layout of an output folder: results/
    // holds nothing else (no copy of the published tree, no files of an earlier run into the same
    // --outdir); the report builds the AnnData from them and adds report/ and matrix/cfrna.h5ad
    tuple val(meta), path(qc, stageAs: 'results/qc/*'), path(matrix, stageAs: 'results/matrix/*'), path(de, stageAs: 'results/de/*'), path(pathways, stageAs: 'results/pathways/*'), path(info, stageAs: 'results/pipeline_info/*')

    output:
    tuple val(meta), path("results/report/index.html"), emit: html
    tuple val(meta), path("results/matrix/cfrna.h5ad"), emit: h5ad
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna report \\
        --results results \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    """
    mkdir -p results/report results/matrix
    touch results/report/index.html results/matrix/cfrna.h5ad
    """
}
