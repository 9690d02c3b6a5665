process CFRNA_REPORT {
    tag "${meta.id}"
    label 'process_low'
    conda "${moduleDir}/environment.yml"

    input:
    // every published folder the report reads, each staged under its own name; the script copies
    // them into a fresh results/ tree (the report writes matrix/cfrna.h5ad, and inputs are read-only)
    tuple val(meta), path(qc, stageAs: 'in/qc/*'), path(matrix, stageAs: 'in/matrix/*'), path(de, stageAs: 'in/de/*'), path(pathways, stageAs: 'in/pathways/*'), path(counts, stageAs: 'in/counts/*'), path(align, stageAs: 'in/alignment/*'), path(trim, stageAs: 'in/trimmed/*'), path(info, stageAs: 'in/pipeline_info/*')

    output:
    tuple val(meta), path("results/report/index.html"), emit: html
    tuple val(meta), path("results/matrix/cfrna.h5ad"), emit: h5ad
    path "versions.yml"                               , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    mkdir -p in results
    cp -rL in/. results/
    cfrna-report \\
        --results results \\
        --threads ${task.cpus} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-report --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p results/report results/matrix
    touch results/report/index.html results/matrix/cfrna.h5ad
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
